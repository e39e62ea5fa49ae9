!> STAND-IN for the Python worker on OASIS3-MCT (pyoasis 5 is not available
!! here): a Fortran program that does what bridge/transport/oasis.py does with
!! the field table of bridge/fortran/examples/exchange_ocean.F90. Component
!! 'worker', peer 'ocean', so its OASIS names are WORKER_OCEAN_<FIELD>
!! (bridge.transport.naming.oasis_name). Each rank owns a box of a PX x PY split
!! (chosen unlike the ocean's, so MCT must reroute); at every step (t = step
!! seconds) it gets a2, b3 and checks every value, then puts c2, d3.
!! Usage: worker_standin NX NY NLEV PX PY NSTEPS [OPX OPY K...]
!! With OPX OPY K...: the ocean (OPX x OPY layout) removed its subdomains K (0-based, i fastest) and declared the
!! gaps; the values expected there are 0 (the bridge's GAP_FILL), and the stand-in counts what OASIS gave there.
program worker_standin
   use mod_oasis
   use mpi
   use standin_fields
   implicit none
   integer :: nx, ny, nlev, px, py, nsteps, comp_id, comm, rank, ierr, part_id
   integer :: i0, j0, ni, nj, step, info, nbad, nrecv, k
   integer :: var(4), args(6), nargs, opx, opy, kd, oi0, oj0, oni, onj, ngap
   integer, allocatable :: removed(:)
   logical, allocatable :: land(:, :)
   character(len=2), parameter :: fname(4) = ['A2', 'B3', 'C2', 'D3']
   real(dp), allocatable :: a(:, :, :), b(:, :, :)

   nargs = command_argument_count()
   args = int_args(6)
   nx = args(1); ny = args(2); nlev = args(3); px = args(4); py = args(5); nsteps = args(6)
   removed = [integer ::]
   if (nargs > 6) then
      removed = int_args(nargs)
      opx = removed(7); opy = removed(8)
      removed = removed(9:)
   end if
   if (nlev < 2) stop 'worker stand-in: NLEV must be >= 2 (b3 and d3 travel as OASIS bundles)'
   call oasis_init_comp(comp_id, 'worker', ierr)
   call oasis_get_localcomm(comm, ierr)
   call MPI_Comm_rank(comm, rank, ierr)
   call split(nx, px, mod(rank, px), i0, ni)
   call split(ny, py, rank/px, j0, nj)
   call oasis_def_partition(part_id, [2, j0*nx + i0, ni, nj, nx], ierr, nx*ny)
   do k = 1, 4
      call oasis_def_var(var(k), 'WORKER_OCEAN_'//fname(k), part_id, [1, merge(nlev, 1, mod(k, 2) == 0)], &
                         merge(OASIS_In, OASIS_Out, k <= 2), [1, ni*nj], OASIS_Real, ierr)
      if (var(k) < 0) print '(a)', 'worker stand-in: WORKER_OCEAN_'//fname(k)//' is not in the namcouple'
   end do
   call oasis_enddef(ierr)
   allocate (a(ni, nj, 1), b(ni, nj, nlev), land(ni, nj))
   land = .false.
   do k = 1, size(removed)   ! this rank's points in the removed subdomains
      call split(nx, opx, mod(removed(k), opx), oi0, oni)
      call split(ny, opy, removed(k)/opx, oj0, onj)
      land(max(oi0, i0) - i0 + 1:min(oi0 + oni, i0 + ni) - i0, max(oj0, j0) - j0 + 1:min(oj0 + onj, j0 + nj) - j0) = .true.
   end do
   ngap = 0
   nbad = 0
   nrecv = 0
   do step = 0, nsteps - 1
      a = -1
      b = -1
      call oasis_get(var(1), step, a(:, :, 1), info)
      nrecv = nrecv + merge(1, 0, info == OASIS_Recvd)
      call oasis_get(var(2), step, b, info)
      nrecv = nrecv + merge(1, 0, info == OASIS_Recvd)
      if (any(land)) then   ! the removed subdomains hold 0, the rest the analytic values
         ngap = ngap + count(land .and. a(:, :, 1) /= 0)
         do kd = 1, nlev
            ngap = ngap + count(land .and. b(:, :, kd) /= 0)
         end do
         where (land) a(:, :, 1) = -1
         do kd = 1, nlev
            where (land) b(:, :, kd) = -1
         end do
         nbad = nbad + count(.not. land .and. a(:, :, 1) /= expected(1, 0)) + count_b()
      else
         nbad = nbad + mismatches(a, 1, step, i0, j0) + mismatches(b, 2, step, i0, j0)
      end if
      call fill(a, 3, step, i0, j0)
      call fill(b, 4, step, i0, j0)
      call oasis_put(var(3), step, a(:, :, 1), info)
      call oasis_put(var(4), step, b, info)
   end do
   print '(a,i0,a,i0,a,i0,a,i0)', 'worker stand-in rank ', rank, ': receptions ', nrecv, ' of ', 2*nsteps, &
      ', wrong values ', nbad
   if (size(removed) > 0) print '(a,i0,a,i0,a,i0)', 'worker stand-in rank ', rank, ': points no ocean rank owns ', &
      count(land), ', values there other than 0: ', ngap
   call oasis_terminate(ierr)

contains

   !> a2's analytic values of this rank's box (level 0 of field fid), at this step.
   function expected(fid, lev) result(w)
      integer, intent(in) :: fid, lev            !< field id and level (0-based)
      real(dp) :: w(ni, nj)
      real(dp) :: full(ni, nj, lev + 1)
      call fill(full, fid, step, i0, j0)
      w = full(:, :, lev + 1)
   end function expected

   !> b3's mismatches outside the removed subdomains.
   integer function count_b()
      real(dp) :: want(ni, nj, nlev)
      call fill(want, 2, step, i0, j0)
      count_b = 0
      do kd = 1, nlev
         count_b = count_b + count(.not. land .and. b(:, :, kd) /= want(:, :, kd))
      end do
   end function count_b

end program worker_standin
