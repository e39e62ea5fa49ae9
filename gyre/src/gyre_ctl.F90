!> @file gyre_ctl.F90
!> @brief Safety: CFL limit of the time step at start, NaN / blow-up checks during the run.
module gyre_ctl
   use, intrinsic :: ieee_arithmetic, only: ieee_is_nan
   use gyre_par
   use gyre_mpp, only: ni, nj, lwp, mpp_max, mpp_sum_int, ctl_stop
   use gyre_dom, only: tmask, umask, vmask, ff_f
   use gyre_rst, only: cn_rst_last
   implicit none
   private

   public :: ctl_cfl, stp_ctl

   real(wp), public :: rcfl_max = 0._wp          !< largest CFL number of the flow met so far (checked every nn_ctl steps)
   integer,  public :: ncfl_max = -1             !< step where it was met
   real(wp) :: rfmax2 = 0._wp                    ! largest f**2 (s-2)
   real(wp) :: rs2 = 0._wp                       ! 1/dx**2 + 1/dy**2 (m-2)
   real(wp) :: rkmix = 0._wp                     ! largest damping rate of the lateral mixing (s-1)

   real(wp), parameter :: rp_rk3_imag = 1.7320508075688772_wp   ! RK3 stability limit on the imaginary axis, sqrt(3)
   real(wp), parameter :: rp_rk3_real = 2.5127453266183286_wp   ! RK3 stability limit on the negative real axis

contains

   !> Stop when rn_dt exceeds the stability limit of gravity waves + rotation + lateral mixing; print the limit.
   subroutine ctl_cfl(px)
      real(wp), intent(in) :: px(1-nn_hls:, 1-nn_hls:, :)   !< initial state (its thickest point sets the wave speed)
      real(wp) :: zv(2), zc, zw, zdtw, zdtv, zdt
      character(len=lc) :: cl
      ! fastest gravity wave c = sqrt(g' h) over the thickest ocean point, fastest |f|
      zv(1) = maxval((rn_h0 + rgfac * px(1:ni,1:nj,jp_ssh)) * tmask(1:ni,1:nj))
      zv(2) = maxval(abs(ff_f(0:ni,0:nj)))
      call mpp_max(zv)
      rfmax2 = zv(2)**2
      rs2 = 1._wp / rn_dx**2 + 1._wp / rn_dy**2
      rkmix = 4._wp * rs2 * max(merge(rn_ahm, 0._wp, ln_dynldf_lap), rn_aht) &
         &  + merge(16._wp * rn_bhm * rs2**2, 0._wp, ln_dynldf_blp)      ! largest mixing damping rate (s-1)
      zc  = sqrt(rn_gprime * max(zv(1), rn_h0))
      zw  = sqrt(rfmax2 + 4._wp * zc**2 * rs2)              ! largest C-grid inertia-gravity frequency (s-1)
      zdtw = rp_rk3_imag / zw
      zdtv = huge(1._wp) ; if (rkmix > 0._wp) zdtv = rp_rk3_real / rkmix
      zdt  = rn_dt / cfl_number(zw)                         ! combined limit
      write(cl, '(a,f0.1,a,f0.1,a,f0.3,a,f0.1,a,es10.3,a)') 'CFL: rn_dt = ', rn_dt, ' s; limit ', zdt, &
         & ' s (gravity waves c = ', zc, ' m/s alone: ', zdtw, ' s; lateral mixing alone: ', zdtv, ' s)'
      if (rn_dt > zdt) then
         call ctl_stop('&namrun: the time step breaks the CFL condition. '//trim(cl)// &
            &          '. Reduce rn_dt below the limit or coarsen the grid.')
      end if
      if (lwp) write(*, '(a)') ' '//trim(cl)
   end subroutine ctl_cfl

   !> CFL number of rn_dt for the largest oscillation frequency pw (s-1) and the mixing damping rate: RK3 is stable
   !> below 1 (imaginary-axis limit sqrt(3), real-axis limit 2.51, combined harmonically).
   pure real(wp) function cfl_number(pw)
      real(wp), intent(in) :: pw                !< largest |imaginary eigenvalue| of the tendencies (s-1)
      cfl_number = rn_dt * (pw / rp_rk3_imag + rkmix / rp_rk3_real)
   end function cfl_number

   !> Stop when the flow itself breaks the CFL condition: advection |u|/dx + |v|/dy plus the inertia-gravity frequency
   !> of the local thickness; pw is the largest such frequency over the ocean (s-1), pc the fastest wave speed (m/s).
   subroutine dyn_cfl(kt, pw, pc, cd_where)
      integer, intent(in) :: kt                 !< time step index of the state
      real(wp), intent(in) :: pw                !< largest advective + inertia-gravity frequency (s-1)
      real(wp), intent(in) :: pc                !< fastest gravity-wave speed sqrt(g' h) (m/s)
      character(len=*), intent(in) :: cd_where  !< where in the step the check is made
      real(wp) :: zn
      character(len=lc) :: cl
      zn = cfl_number(pw)
      if (zn > rcfl_max) then
         rcfl_max = zn ; ncfl_max = kt
      end if
      if (zn <= rn_cflmax) return
      write(cl, '(a,i0,a,f5.3,a,f5.3,a,f0.1,a,f0.3,a,f0.1,a)') 'CFL: at step ', kt, ' the flow breaks the CFL condition: CFL number ', &
         & zn, ' > rn_cflmax = ', rn_cflmax, ' (rn_dt = ', rn_dt, ' s; gravity waves c = ', pc, ' m/s plus advection; limit now ', rn_dt / zn, ' s)'
      call ctl_stop(trim(cl)//' ('//cd_where//'); reduce rn_dt; '//trim(last_restart()))
   end subroutine dyn_cfl

   !> 'last good restart: <file>' or 'no restart written yet'.
   function last_restart() result(cl)
      character(len=lc) :: cl
      cl = 'no restart written yet'
      if (cn_rst_last /= '') cl = 'last good restart: '//trim(cn_rst_last)
   end function last_restart

   !> Stop naming the step and the field when the state holds NaN or exceeds the &namctl thresholds.
   subroutine stp_ctl(kt, px, cd_where)
      integer, intent(in) :: kt                 !< time step index of the state
      real(wp), intent(in) :: px(1-nn_hls:, 1-nn_hls:, :)   !< state
      character(len=*), intent(in) :: cd_where  !< where in the step the check is made
      integer :: inan(jpfld), ji, jj, jf
      real(wp) :: zv(jpfld), zval, zlim(jpfld), zw(2), zall(jpfld+2), zrdx, zrdy
      character(len=lc) :: cl
      character(len=24) :: clu(jpfld)
      inan = 0 ; zv = -huge(1._wp) ; zw = 0._wp
      zrdx = 1._wp / rn_dx ; zrdy = 1._wp / rn_dy
      do jj = 1, nj
         do ji = 1, ni
            ! ssh: check the layer thickness through -h (a max reduction)
            zval = -(rn_h0 + rgfac * px(ji,jj,jp_ssh))
            if (ieee_is_nan(zval)) then ; inan(jp_ssh) = inan(jp_ssh) + 1
            else if (tmask(ji,jj) > 0.5_wp) then
               zv(jp_ssh) = max(zv(jp_ssh), zval)
               zw(1) = max(zw(1), -zval)              ! thickest layer: fastest gravity wave
               zw(2) = max(zw(2), abs(px(ji,jj,jp_u)) * zrdx + abs(px(ji,jj,jp_v)) * zrdy &
                  &               + sqrt(rfmax2 + 4._wp * rn_gprime * max(-zval, 0._wp) * rs2))
            end if
            zval = abs(px(ji,jj,jp_u))
            if (ieee_is_nan(zval)) then ; inan(jp_u) = inan(jp_u) + 1 ; else ; zv(jp_u) = max(zv(jp_u), zval) ; end if
            zval = abs(px(ji,jj,jp_v))
            if (ieee_is_nan(zval)) then ; inan(jp_v) = inan(jp_v) + 1 ; else ; zv(jp_v) = max(zv(jp_v), zval) ; end if
            zval = abs(px(ji,jj,jp_tem))
            if (ieee_is_nan(zval)) then ; inan(jp_tem) = inan(jp_tem) + 1 ; else ; zv(jp_tem) = max(zv(jp_tem), zval) ; end if
         end do
      end do
      call mpp_sum_int(inan)
      zall = [zv, zw]                           ! one reduction for the thresholds and the CFL number
      call mpp_max(zall)
      zv = zall(1:jpfld) ; zw = zall(jpfld+1:)
      zlim = [-rn_hmin, rn_umax, rn_umax, rn_tmax]
      clu  = [character(len=24) :: 'm (layer thickness)', 'm s-1', 'm s-1', 'degC']
      do jf = 1, jpfld
         cl = ''
         if (inan(jf) > 0) then
            write(cl, '(a,i0,a,a,a,i0,a)') 'blow-up at step ', kt, ': field ''', trim(cp_fld(jf)), ''' is NaN at ', &
               &                          inan(jf), ' points'
         else if (zv(jf) > zlim(jf) .or. zv(jf) > huge(1._wp)) then
            if (jf == jp_ssh) then
               write(cl, '(a,i0,a,es12.4,a,es12.4,a)') 'blow-up at step ', kt, &
                  & ': field ''ssh'': the layer thickness h = rn_h0 + ssh*g/g'' falls to ', -zv(jf), &
                  & ' m, below rn_hmin = ', rn_hmin, ' m'
            else
               write(cl, '(a,i0,a,a,a,a,a,es12.4,a,a,a,es12.4)') 'blow-up at step ', kt, ': field ''', trim(cp_fld(jf)), &
                  & ''': max |', trim(cp_fld(jf)), '| = ', zv(jf), ' ', trim(clu(jf)), ' exceeds the &namctl limit ', zlim(jf)
            end if
         end if
         if (cl /= '') call ctl_stop(trim(cl)//' ('//cd_where//'); '//trim(last_restart()))
      end do
      call dyn_cfl(kt, zw(2), sqrt(rn_gprime * max(zw(1), 0._wp)), cd_where)
   end subroutine stp_ctl

end module gyre_ctl
