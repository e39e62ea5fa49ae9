!> Stand-in ocean member: argv = component name, member number. Puts SSH, U; gets SSH_EMU, U_EMU (= sent + 0.5).
program ocean
   use standin_common
   implicit none
   include 'mpif.h'
   character(len=32) :: comp, arg
   integer :: member, comp_id, comm, part_id, j0, nj, ierr, f, kt, info, i, j, l, nbad, rank
   integer :: id_out(nf), id_in(nf)
   real(8), allocatable :: a(:,:), b(:,:)
   call get_command_argument(1, comp); call get_command_argument(2, arg); read(arg, *) member
   call oasis_init_comp(comp_id, trim(comp), ierr)
   call oasis_get_localcomm(comm, ierr)
   call MPI_Comm_rank(comm, rank, ierr)
   call box(comm, part_id, j0, nj)
   do f = 1, nf
      call oasis_def_var(id_out(f), trim(upper(comp))//'_'//trim(fname(f)), part_id, [1, flev(f)], OASIS_Out, &
         [1, nx*nj], OASIS_Real, ierr)
      call oasis_def_var(id_in(f), trim(upper(comp))//'_'//trim(fname(f))//'_EMU', part_id, [1, flev(f)], OASIS_In, &
         [1, nx*nj], OASIS_Real, ierr)
      if (id_out(f) < 0 .or. id_in(f) < 0) print *, 'NOT IN NAMCOUPLE', trim(comp), f
   end do
   call oasis_enddef(ierr)
   nbad = 0
   do kt = 0, nsteps - 1
      do f = 1, nf
         allocate(a(nx*nj, flev(f)), b(nx*nj, flev(f)))
         do l = 1, flev(f); do j = 1, nj; do i = 1, nx
            a(i + (j-1)*nx, l) = val(member, f, l, i, j0 + j, kt)
         end do; end do; end do
         call oasis_put(id_out(f), kt*dt, a, info)
         if (rank == 0 .and. info /= 0) print '(a,1x,a,1x,a,i0,a,i0)', trim(comp), trim(fname(f)), 'put t=', kt*dt, ' info=', info
         b = -1
         call oasis_get(id_in(f), kt*dt, b, info)
         if (info /= 0) then
            if (any(b /= a + 0.5d0)) nbad = nbad + 1
            if (rank == 0) print '(a,1x,a,1x,a,i0,a,i0)', trim(comp), trim(fname(f))//'_EMU', 'get t=', kt*dt, ' info=', info
         end if
         deallocate(a, b)
      end do
   end do
   print '(a,1x,a,i0,a,i0)', trim(comp), 'rank ', rank, ' bad emu receptions: ', nbad
   call oasis_terminate(ierr)
contains
   function upper(s) result(u)
      character(len=*), intent(in) :: s
      character(len=len(s)) :: u
      integer :: k
      u = s
      do k = 1, len(s)
         if (s(k:k) >= 'a' .and. s(k:k) <= 'z') u(k:k) = achar(iachar(s(k:k)) - 32)
      end do
   end function
end program
